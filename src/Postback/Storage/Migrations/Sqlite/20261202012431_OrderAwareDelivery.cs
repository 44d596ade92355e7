using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class OrderAwareDelivery : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "CaptureSources",
                table: "orders",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Captures",
                table: "export_profiles",
                type: "TEXT",
                nullable: false,
                defaultValue: "[]");

            migrationBuilder.AddColumn<bool>(
                name: "Coalesce",
                table: "export_profiles",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<string>(
                name: "Ordering",
                table: "export_profiles",
                type: "TEXT",
                maxLength: 16,
                nullable: false,
                defaultValue: "none");

            migrationBuilder.AddColumn<string>(
                name: "Captures",
                table: "delivery_attempts",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "AfterId",
                table: "deliveries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "CoalescedIntoId",
                table: "deliveries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_AfterId",
                table: "deliveries",
                column: "AfterId",
                unique: true,
                filter: "\"AfterId\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_deliveries_AfterId",
                table: "deliveries");

            migrationBuilder.DropColumn(
                name: "CaptureSources",
                table: "orders");

            migrationBuilder.DropColumn(
                name: "Captures",
                table: "export_profiles");

            migrationBuilder.DropColumn(
                name: "Coalesce",
                table: "export_profiles");

            migrationBuilder.DropColumn(
                name: "Ordering",
                table: "export_profiles");

            migrationBuilder.DropColumn(
                name: "Captures",
                table: "delivery_attempts");

            migrationBuilder.DropColumn(
                name: "AfterId",
                table: "deliveries");

            migrationBuilder.DropColumn(
                name: "CoalescedIntoId",
                table: "deliveries");
        }
    }
}
